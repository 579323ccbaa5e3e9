"""한국어: the traveller status page (the kiosk's languages)."""

MESSAGES = {
    'Skip to main content':
        '본문으로 건너뛰기',
    'Language':
        '언어',
    'Tax-free form status':
        '택스 프리 서류 상태',
    'Export deadline':
        '반출 기한',
    'Form number':
        '서류 번호',
    'Next step':
        '다음 단계',
    'Check another form':
        '다른 서류 확인',
    'Check your tax-free form':
        '택스 프리 서류 확인',
    'Enter the form number printed next to the QR code and your last name as in your passport.':
        'QR 코드 옆에 인쇄된 서류 번호와 여권에 적힌 성을 입력하세요.',
    '10 letters and digits, for example NL 7K3Q W9XD':
        '영문자와 숫자 10자리, 예: NL 7K3Q W9XD',
    'Last name':
        '성',
    'Show status':
        '상태 보기',
    'Validate your form at your last EU airport or port, before you check in your luggage.':
        'EU를 떠나기 전 마지막 공항이나 항구에서, 수하물을 부치기 전에 서류를 확인받으세요.',
    'Not validated yet':
        '아직 확인되지 않음',
    'Customs check needed':
        '세관 검사 필요',
    'Go to the customs desk with your goods, your passport and this form, before you check in your luggage.':
        '수하물을 부치기 전에 구매한 물품, 여권, 이 서류를 가지고 세관 창구로 가세요.',
    'Export validated':
        '반출 확인 완료',
    'Export validated for part of your goods':
        '일부 물품의 반출 확인 완료',
    'Your refund will be paid by {payer}.':
        '환급금은 {payer}에서 지급합니다.',
    'Refund paid':
        '환급 지급 완료',
    'Nothing more to do. Have a good trip!':
        '더 이상 할 일이 없습니다. 즐거운 여행 되세요!',
    'Export refused by customs':
        '세관이 반출을 거부함',
    'This form cannot be validated any more. Ask the shop if you have questions.':
        '이 서류는 더 이상 확인받을 수 없습니다. 문의 사항은 상점에 물어보세요.',
    'Form cancelled by the shop':
        '상점이 서류를 취소함',
    'This form cannot be used. Ask the shop if you have questions.':
        '이 서류는 사용할 수 없습니다. 문의 사항은 상점에 물어보세요.',
    'Export deadline passed':
        '반출 기한 경과',
    'This form can no longer be validated.':
        '이 서류는 더 이상 확인받을 수 없습니다.',
    'Fill this in.':
        '이 항목을 입력하세요.',
    'This is not a valid form number. Check it on your form.':
        '올바른 서류 번호가 아닙니다. 서류에서 번호를 확인하세요.',
    'Too many attempts. Wait a minute and try again.':
        '시도 횟수가 너무 많습니다. 1분 후에 다시 시도하세요.',
    'We found no form with this number and last name.':
        '이 번호와 성에 해당하는 서류를 찾을 수 없습니다.',
    'This page was open for a long time. Please send it again.':
        '이 페이지가 오래 열려 있었습니다. 다시 보내 주세요.',
    'Go to the start page':
        '처음 페이지로',
}

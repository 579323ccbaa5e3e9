"""العربية: the traveller status page (the kiosk's languages)."""

MESSAGES = {
    'Skip to main content':
        'انتقل إلى المحتوى الرئيسي',
    'Language':
        'اللغة',
    'Tax-free form status':
        'حالة نموذج استرداد الضريبة',
    'Export deadline':
        'الموعد النهائي للتصدير',
    'Form number':
        'رقم النموذج',
    'Next step':
        'الخطوة التالية',
    'Check another form':
        'التحقق من نموذج آخر',
    'Check your tax-free form':
        'تحقق من نموذج استرداد الضريبة',
    'Enter the form number printed next to the QR code and your last name as in your passport.':
        'أدخل رقم النموذج المطبوع بجانب رمز QR واسم العائلة كما في جواز سفرك.',
    '10 letters and digits, for example NL 7K3Q W9XD':
        '10 أحرف وأرقام، مثل NL 7K3Q W9XD',
    'Last name':
        'اسم العائلة',
    'Show status':
        'عرض الحالة',
    'Validate your form at your last EU airport or port, before you check in your luggage.':
        'صادِق على النموذج في آخر مطار أو ميناء في الاتحاد الأوروبي، قبل تسجيل أمتعتك.',
    'Not validated yet':
        'لم تتم المصادقة بعد',
    'Customs check needed':
        'مطلوب فحص جمركي',
    'Go to the customs desk with your goods, your passport and this form, before you check in your luggage.':
        'توجّه إلى مكتب الجمارك ومعك البضائع وجواز سفرك وهذا النموذج، قبل تسجيل أمتعتك.',
    'Export validated':
        'تمت المصادقة على التصدير',
    'Export validated for part of your goods':
        'تمت المصادقة على تصدير جزء من بضائعك',
    'Your refund will be paid by {payer}.':
        'سيدفع {payer} المبلغ المسترد لك.',
    'Refund paid':
        'تم دفع المبلغ المسترد',
    'Nothing more to do. Have a good trip!':
        'لا حاجة إلى أي إجراء آخر. رحلة سعيدة!',
    'Export refused by customs':
        'رفضت الجمارك التصدير',
    'This form cannot be validated any more. Ask the shop if you have questions.':
        'لم يعد من الممكن المصادقة على هذا النموذج. راجع المتجر إذا كانت لديك أسئلة.',
    'Form cancelled by the shop':
        'ألغى المتجر هذا النموذج',
    'This form cannot be used. Ask the shop if you have questions.':
        'لا يمكن استخدام هذا النموذج. راجع المتجر إذا كانت لديك أسئلة.',
    'Export deadline passed':
        'انتهى الموعد النهائي للتصدير',
    'This form can no longer be validated.':
        'لم يعد من الممكن المصادقة على هذا النموذج.',
    'Fill this in.':
        'املأ هذا الحقل.',
    'This is not a valid form number. Check it on your form.':
        'هذا ليس رقم نموذج صالحًا. تحقق منه على النموذج.',
    'Too many attempts. Wait a minute and try again.':
        'محاولات كثيرة جدًا. انتظر دقيقة ثم حاول مرة أخرى.',
    'We found no form with this number and last name.':
        'لم نجد نموذجًا بهذا الرقم واسم العائلة.',
    'This page was open for a long time. Please send it again.':
        'ظلت هذه الصفحة مفتوحة لفترة طويلة. يرجى الإرسال مرة أخرى.',
    'Go to the start page':
        'الذهاب إلى الصفحة الرئيسية',
}
